"""Security group rules as the provider reads them back from the emulator."""

from __future__ import annotations


def test_a_rule_referencing_a_group_keeps_its_description(emulator):
    """Else every plan changes the description of the rule that lets the functions reach an endpoint."""
    ec2 = emulator.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    functions = ec2.create_security_group(GroupName="fns", Description="functions", VpcId=vpc)["GroupId"]
    endpoint = ec2.create_security_group(GroupName="endpoint", Description="endpoint", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=endpoint,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "UserIdGroupPairs": [{"GroupId": functions, "Description": "HTTPS from the functions"}],
            }
        ],
    )
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [endpoint]}])
    (rule,) = [r for r in rules["SecurityGroupRules"] if not r["IsEgress"]]
    assert rule["ReferencedGroupInfo"]["GroupId"] == functions
    assert rule["Description"] == "HTTPS from the functions"
