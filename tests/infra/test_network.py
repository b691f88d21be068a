from tests.infra.synth import Synth


def test_three_private_subnets_in_three_zones(synthesized: Synth) -> None:
    subnets = list(synthesized.resources("network", "aws_subnet").values())
    assert len(subnets) == 3
    assert len({s["availability_zone"] for s in subnets}) == 3
    assert all(s["map_public_ip_on_launch"] is False for s in subnets)
    assert len({s["cidr_block"] for s in subnets}) == 3


def test_no_route_to_the_internet(synthesized: Synth) -> None:
    stack = synthesized.stacks["network"]["resource"]
    for forbidden in ("aws_internet_gateway", "aws_nat_gateway", "aws_egress_only_internet_gateway", "aws_eip"):
        assert forbidden not in stack
    route_table = synthesized.only("network", "aws_route_table")
    assert "route" not in route_table
    assert "aws_route" not in stack


def _endpoints(synthesized: Synth) -> dict[str, dict]:
    endpoints = synthesized.resources("network", "aws_vpc_endpoint").values()
    return {e["service_name"].rsplit(".", 1)[1]: e for e in endpoints}


def test_gateway_endpoints_for_s3_and_dynamodb_on_private_routes(synthesized: Synth) -> None:
    endpoints = _endpoints(synthesized)
    assert sorted(endpoints) == ["dynamodb", "glue", "s3"]
    for service in ("dynamodb", "s3"):
        assert endpoints[service]["vpc_endpoint_type"] == "Gateway"
        assert endpoints[service]["route_table_ids"] == ["${aws_route_table.private-routes.id}"]
    assert len(synthesized.resources("network", "aws_route_table_association")) == 3


def test_one_glue_interface_endpoint_in_one_az_outside_production(synthesized: Synth, prod_synthesized: Synth) -> None:
    """Interface endpoints cost money per AZ and hour: Glue's (the load function's commits) is the one
    the design needs, in one AZ (reached from all three) and in every AZ in production."""
    for synth, zones in ((synthesized, 1), (prod_synthesized, 3)):
        glue = _endpoints(synth)["glue"]
        assert glue["vpc_endpoint_type"] == "Interface" and glue["private_dns_enabled"] is True
        assert len(glue["subnet_ids"]) == zones
        assert glue["security_group_ids"] == ["${aws_security_group.glue-endpoint-sg.id}"]


def test_security_groups_let_only_the_functions_reach_the_endpoints_over_https(synthesized: Synth) -> None:
    groups = synthesized.resources("network", "aws_security_group")
    assert sorted(groups) == ["glue-endpoint-sg", "lambda-sg"]
    assert all("ingress" not in g and "egress" not in g for g in groups.values())  # rules in their own resources
    assert synthesized.resources("network", "aws_security_group_rule") == {}
    (ingress,) = synthesized.resources("network", "aws_vpc_security_group_ingress_rule").values()
    assert ingress["security_group_id"] == "${aws_security_group.glue-endpoint-sg.id}"
    assert ingress["referenced_security_group_id"] == "${aws_security_group.lambda-sg.id}"  # the functions only
    egress = synthesized.resources("network", "aws_vpc_security_group_egress_rule").values()
    assert len(egress) == 3
    for rule in egress:
        assert rule["security_group_id"] == "${aws_security_group.lambda-sg.id}"
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 443, 443)
        assert "cidr_ipv4" not in rule
        assert ("prefix_list_id" in rule) != (rule.get("referenced_security_group_id") is not None)
    assert (ingress["ip_protocol"], ingress["from_port"], ingress["to_port"]) == ("tcp", 443, 443)


def test_default_security_group_is_closed(synthesized: Synth) -> None:
    default = synthesized.only("network", "aws_default_security_group")
    assert "ingress" not in default and "egress" not in default


def test_flow_logs_to_an_encrypted_log_group(synthesized: Synth) -> None:
    flow_log = synthesized.only("network", "aws_flow_log")
    assert flow_log["traffic_type"] == "ALL"
    log_group = synthesized.only("network", "aws_cloudwatch_log_group")
    assert log_group["kms_key_id"].startswith("${aws_kms_key.")
    assert synthesized.only("network", "aws_kms_key")["enable_key_rotation"] is True
