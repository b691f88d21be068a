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


def test_gateway_endpoints_for_s3_and_dynamodb_on_private_routes(synthesized: Synth) -> None:
    endpoints = synthesized.resources("network", "aws_vpc_endpoint").values()
    assert sorted(e["service_name"].rsplit(".", 1)[1] for e in endpoints) == ["dynamodb", "s3"]
    for endpoint in endpoints:
        assert endpoint["vpc_endpoint_type"] == "Gateway"
        assert endpoint["route_table_ids"] == ["${aws_route_table.private-routes.id}"]
    assert len(synthesized.resources("network", "aws_route_table_association")) == 3
    # Interface endpoints cost money in every AZ; the design needs none.
    assert all(e["vpc_endpoint_type"] != "Interface" for e in endpoints)


def test_lambda_security_group_has_no_ingress_and_https_only_egress(synthesized: Synth) -> None:
    group = synthesized.only("network", "aws_security_group")
    assert "ingress" not in group and "egress" not in group  # rules live in their own resources
    assert synthesized.resources("network", "aws_vpc_security_group_ingress_rule") == {}
    assert synthesized.resources("network", "aws_security_group_rule") == {}
    egress = synthesized.resources("network", "aws_vpc_security_group_egress_rule").values()
    assert len(egress) == 2
    for rule in egress:
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 443, 443)
        assert "prefix_list_id" in rule and "cidr_ipv4" not in rule


def test_default_security_group_is_closed(synthesized: Synth) -> None:
    default = synthesized.only("network", "aws_default_security_group")
    assert "ingress" not in default and "egress" not in default


def test_flow_logs_to_an_encrypted_log_group(synthesized: Synth) -> None:
    flow_log = synthesized.only("network", "aws_flow_log")
    assert flow_log["traffic_type"] == "ALL"
    log_group = synthesized.only("network", "aws_cloudwatch_log_group")
    assert log_group["kms_key_id"].startswith("${aws_kms_key.")
    assert synthesized.only("network", "aws_kms_key")["enable_key_rotation"] is True
