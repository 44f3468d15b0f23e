"""The pure routing core: no boto3, gRPC or OpenTelemetry imports here (a test enforces it)."""
