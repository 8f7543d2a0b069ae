"""AWS: aiobotocore clients from the standard AWS configuration, AWS errors as connector errors
(secrets masked), the jittered backoff S3 and DynamoDB retry with, and publishing to SNS (the
``SnsAlarm`` action).

Configuration is botocore's own: credentials from the environment, ``AWS_PROFILE`` and the
shared files, web identity, container/instance metadata; the region from ``AWS_REGION`` /
``AWS_DEFAULT_REGION`` / the profile (``us-east-1`` when none is set); endpoints from
``AWS_ENDPOINT_URL`` and per service ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_DYNAMODB``,
``AWS_ENDPOINT_URL_SNS``.

Inside: ``_client`` (sessions, clients, their configuration and timeouts), ``_errors`` (error
mapping, the AWS secrets to mask), ``_bounds`` (the running client's timeouts and endpoint, for
body reads and uploads), ``_backoff``, ``_sns``.
"""

from ._backoff import full_jitter
from ._bounds import sending
from ._client import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_REGION,
    client,
    client_config,
    endpoint_from_env,
    region_from_env,
    retry_count,
    session,
)
from ._errors import (
    AWS_SECRET_VARIABLES,
    CREDENTIAL_SOURCES,
    aws_secrets,
    error_code,
    map_errors,
    scrub,
    translate,
)
from ._sns import MESSAGE_LIMIT as SNS_MESSAGE_LIMIT
from ._sns import SUBJECT_LIMIT as SNS_SUBJECT_LIMIT
from ._sns import clean_subject as clean_sns_subject
from ._sns import publish as publish_sns
from ._sns import region_of as sns_region_of

__all__ = [
    "AWS_SECRET_VARIABLES",
    "CREDENTIAL_SOURCES",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_REGION",
    "SNS_MESSAGE_LIMIT",
    "SNS_SUBJECT_LIMIT",
    "aws_secrets",
    "clean_sns_subject",
    "client",
    "client_config",
    "endpoint_from_env",
    "error_code",
    "full_jitter",
    "map_errors",
    "publish_sns",
    "region_from_env",
    "retry_count",
    "scrub",
    "sending",
    "session",
    "sns_region_of",
    "translate",
]
