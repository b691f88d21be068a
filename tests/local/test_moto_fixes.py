"""Gaps of moto the emulator fills, each seen in a plan or a destroy of the local deployment."""

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


def test_a_key_with_a_delete_marker_is_deleted_once_versioning_is_suspended(emulator):
    """What a destroy does to a used bucket: Terraform removes the versioning configuration (Suspended)
    before the bucket, whose force-destroy then deletes each key; one with a delete marker answered 500."""
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="markers", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    s3.put_bucket_versioning(Bucket="markers", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="markers", Key="k", Body=b"x")
    s3.delete_object(Bucket="markers", Key="k")  # a delete marker
    s3.put_object(Bucket="markers", Key="k", Body=b"y")
    s3.put_bucket_versioning(Bucket="markers", VersioningConfiguration={"Status": "Suspended"})
    s3.delete_object(Bucket="markers", Key="k")
