"""S3 and DynamoDB access. Clients are created lazily so tests can create them inside mock_aws."""
