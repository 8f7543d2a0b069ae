"""The object types of AWS Data Pipeline: their fields, kinds, required and one-of groups.

One declarative table drives validation (:mod:`engine.definition.validate`) and the pydantic
models (:mod:`engine.definition.model`). Field kinds are checked on constant values at validation
time and on evaluated values at run time (every value is a string in the API).

``runs`` says what headrace does with the type: ``"run"`` (executes it), ``"read"`` (reads and
validates it; running it is refused with a clear message: EMR-family types), ``"ignore"``
(meaningful only on AWS: EC2/EMR resources, IAM roles; accepted, with a warning where fields
are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: The most partitions a CopyActivity may read its input in (connectors' MAX_PARTITIONS).
MAX_PARTITIONS = 64

Kind = Literal["string", "int", "float", "bool", "period", "datetime", "enum", "ref", "any"]
Category = Literal[
    "datanode", "activity", "precondition", "database", "dataformat", "action", "resource",
    "schedule", "config",
]
Runs = Literal["run", "read", "ignore"]


@dataclass(frozen=True)
class FieldSpec:
    kind: Kind = "string"
    multi: bool = False
    #: for refs: allowed target types or categories; empty = anything
    targets: tuple[str, ...] = ()
    #: for enums: allowed values, compared case-insensitively
    values: tuple[str, ...] = ()
    #: AWS allows only values at or above this many seconds (periods); below is a warning here
    aws_min_seconds: int | None = None
    #: upper bound for ints
    maximum: int | None = None
    minimum: float | None = None


@dataclass(frozen=True)
class TypeSpec:
    name: str
    category: Category
    runs: Runs
    fields: dict[str, FieldSpec]
    required: tuple[str, ...] = ()
    #: groups of which exactly one field must be set
    one_of: tuple[tuple[str, ...], ...] = ()
    #: groups of which at most one field may be set
    at_most_one: tuple[tuple[str, ...], ...] = ()
    #: required fields that headrace does not need: missing ones are warnings, not errors
    aws_only_required: tuple[str, ...] = ()
    #: fields that AWS uses and headrace ignores (warn when set)
    ignored: tuple[str, ...] = ()
    extension: bool = False
    note: str = ""
    all_fields: dict[str, FieldSpec] = field(default_factory=dict)


S = FieldSpec()
SM = FieldSpec(multi=True)
INT = FieldSpec("int")
FLOAT = FieldSpec("float")
BOOL = FieldSpec("bool")
PERIOD = FieldSpec("period")
DATETIME = FieldSpec("datetime")


def ref(*targets: str, multi: bool = False) -> FieldSpec:
    return FieldSpec("ref", multi=multi, targets=targets)


def enum(*values: str) -> FieldSpec:
    return FieldSpec("enum", values=values)


def period(aws_min_minutes: int | None = None) -> FieldSpec:
    return FieldSpec("period", aws_min_seconds=None if aws_min_minutes is None
                     else aws_min_minutes * 60)


ACTIONS = ref("action", multi=True)
EBS = ref("EbsConfiguration")

#: Fields every object may carry.
UNIVERSAL: dict[str, FieldSpec] = {
    "type": S, "parent": ref(), "scheduleType": enum("cron", "timeseries", "ondemand"),
}

#: Fields shared by runnable objects (activities, data nodes, resources), reference section 2.
RUNNABLE: dict[str, FieldSpec] = {
    "schedule": ref("Schedule"),
    "runsOn": ref("resource"),
    "workerGroup": S,
    "dependsOn": ref("activity", "datanode", "resource", multi=True),
    "precondition": ref("precondition", multi=True),
    "maximumRetries": FieldSpec("int", maximum=5, minimum=0),
    "retryDelay": period(2),
    "attemptTimeout": period(15),
    "reportProgressTimeout": period(15),
    "lateAfterTimeout": period(15),
    "onFail": ACTIONS, "onSuccess": ACTIONS, "onLateAction": ACTIONS,
    "failureAndRerunMode": enum("cascade", "none"),
    "maxActiveInstances": FieldSpec("int", minimum=1),
    "pipelineLogUri": S,
    "role": S, "resourceRole": S,
    "attemptStatus": S,
    "region": S,
}

PRECONDITION_COMMON: dict[str, FieldSpec] = {
    "schedule": ref("Schedule"),
    "runsOn": ref("resource"), "workerGroup": S,
    "preconditionTimeout": period(15),
    "maximumRetries": FieldSpec("int", minimum=0),
    "retryDelay": period(2),
    "attemptTimeout": period(15),
    "reportProgressTimeout": period(15),
    "lateAfterTimeout": period(15),
    "onFail": ACTIONS, "onSuccess": ACTIONS, "onLateAction": ACTIONS,
    "failureAndRerunMode": enum("cascade", "none"),
    "pipelineLogUri": S, "role": S, "resourceRole": S, "region": S, "node": ref(),
    "maxActiveInstances": FieldSpec("int", minimum=1),
}

IO = {"input": ref("datanode", multi=True), "output": ref("datanode", multi=True)}
EMR_COMMON = {
    **IO, "preActivityTaskConfig": ref("ShellScriptConfig"),
    "postActivityTaskConfig": ref("ShellScriptConfig"),
    "resizeClusterBeforeRunning": BOOL, "resizeClusterMaxInstances": INT, "hadoopQueue": S,
}
SQL_NODE = {
    "table": S, "database": ref("database"), "selectQuery": S, "insertQuery": S,
    "createTableSql": S, "schemaName": S,
}
#: headrace extensions: an incremental copy (on a CopyActivity, or on the SQL data node that is
#: its input; see engine.definition.check_incremental)
INCREMENTAL = {"incrementalColumn": S, "incrementalKey": SM, "lookback": S}
DB_COMMON = {"databaseName": S, "jdbcProperties": SM, "jdbcDriverJarUri": S, "region": S,
             "username": S, "*password": S}
RESOURCE_COMMON = {
    "terminateAfter": period(), "keyPair": S, "subnetId": S, "availabilityZone": S,
    "httpProxy": ref("HttpProxy"), "useOnDemandOnLastAttempt": BOOL, "initTimeout": period(),
    "actionOnTaskFailure": enum("continue", "terminate"),
    "actionOnResourceFailure": enum("retryall", "retrynone"),
}
COLUMNS = {"column": SM}

_TYPES: list[TypeSpec] = [
    # data nodes
    TypeSpec("S3DataNode", "datanode", "run", {
        **RUNNABLE, "filePath": S, "directoryPath": S, "dataFormat": ref("dataformat"),
        "compression": enum("none", "gzip"), "manifestFilePath": S,
        "s3EncryptionType": enum("SERVER_SIDE_ENCRYPTION", "NONE")},
        one_of=(("filePath", "directoryPath"),)),
    TypeSpec("SqlDataNode", "datanode", "run", {
        **RUNNABLE, **SQL_NODE, **INCREMENTAL, "connectionString": S, "username": S,
        "*password": S},
        required=("table",),
        note="connectionString, username and *password on the node are the legacy form "
             "(AWS's MySQL tutorial uses them); a database reference is the current one"),
    TypeSpec("MySqlDataNode", "datanode", "run", {
        **RUNNABLE, **SQL_NODE, **INCREMENTAL, "connectionString": S, "username": S,
        "*password": S},
        required=("table",), note="deprecated by AWS in favour of SqlDataNode"),
    TypeSpec("DynamoDBDataNode", "datanode", "run", {
        **RUNNABLE, "tableName": S, "dataFormat": ref("dataformat"),
        "readThroughputPercent": FieldSpec("float", minimum=0.1),
        "writeThroughputPercent": FieldSpec("float", minimum=0.1)},
        required=("tableName",)),
    TypeSpec("RedshiftDataNode", "datanode", "run", {
        **RUNNABLE, "database": ref("RedshiftDatabase"), "tableName": S, "createTableSql": S,
        "schemaName": S, "primaryKeys": SM},
        required=("database", "tableName")),
    # activities
    # headrace extensions: ``partitions`` (an SQL table input read as N key ranges at once);
    # ``verify`` (compare both ends' rows and checksums before commit); ``incrementalColumn``
    # with ``incrementalKey`` and ``lookback`` (an incremental copy)
    TypeSpec("CopyActivity", "activity", "run", {
        **RUNNABLE, **IO, "partitions": FieldSpec("int", minimum=1, maximum=MAX_PARTITIONS),
        "verify": BOOL, **INCREMENTAL},
             required=("input", "output")),
    TypeSpec("SqlActivity", "activity", "run", {
        **RUNNABLE, **IO, "database": ref("database"), "script": S, "scriptUri": S,
        "scriptArgument": SM, "queue": S},
        required=("database",), one_of=(("script", "scriptUri"),)),
    TypeSpec("ShellCommandActivity", "activity", "run", {
        **RUNNABLE, **IO, "command": S, "scriptUri": S, "scriptArgument": SM, "stage": BOOL,
        "stdout": S, "stderr": S},
        one_of=(("command", "scriptUri"),)),
    TypeSpec("RedshiftCopyActivity", "activity", "run", {
        **RUNNABLE, **IO,
        "insertMode": enum("KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND"),
        "commandOptions": SM, "transformSql": S, "queue": S},
        required=("insertMode",)),
    TypeSpec("EmrActivity", "activity", "run", {
        **RUNNABLE, **EMR_COMMON, "step": SM, "preStepCommand": SM, "postStepCommand": SM,
        "actionOnResourceFailure": S, "actionOnTaskFailure": S}),
    TypeSpec("HadoopActivity", "activity", "run", {
        **RUNNABLE, **EMR_COMMON, "jarUri": S, "mainClass": S, "argument": SM},
        required=("jarUri",)),
    TypeSpec("HiveActivity", "activity", "run", {
        **RUNNABLE, **EMR_COMMON, "hiveScript": S, "scriptUri": S, "scriptVariable": SM,
        "stage": BOOL},
        one_of=(("hiveScript", "scriptUri"),)),
    TypeSpec("HiveCopyActivity", "activity", "run", {
        **RUNNABLE, **EMR_COMMON, "filterSql": S, "generatedScriptsPath": S}),
    TypeSpec("PigActivity", "activity", "read", {
        **RUNNABLE, **EMR_COMMON, "script": S, "scriptUri": S, "scriptVariable": SM,
        "stage": BOOL, "generatedScriptsPath": S},
        one_of=(("script", "scriptUri"),)),
    # resources
    TypeSpec("Ec2Resource", "resource", "ignore", {
        **RUNNABLE, **RESOURCE_COMMON, "instanceType": S, "imageId": S, "securityGroups": SM,
        "securityGroupIds": SM, "associatePublicIpAddress": BOOL, "spotBidPrice": S,
        "runAsUser": S, "instanceCount": INT, "minInstanceCount": INT},
        aws_only_required=("role", "resourceRole"),
        note="headrace runs the activities in its own engine; the EC2 fields are ignored"),
    TypeSpec("EmrCluster", "resource", "read", {
        **RUNNABLE, **RESOURCE_COMMON, "releaseLabel": S, "amiVersion": S,
        "applications": SM, "configuration": ref("EmrConfiguration", multi=True),
        "masterInstanceType": S, "coreInstanceType": S, "coreInstanceCount": INT,
        "taskInstanceType": S, "taskInstanceCount": INT, "masterInstanceBidPrice": S,
        "coreInstanceBidPrice": S, "taskInstanceBidPrice": S, "bootstrapAction": SM,
        "emrManagedMasterSecurityGroupId": S, "emrManagedSlaveSecurityGroupId": S,
        "additionalMasterSecurityGroupIds": SM, "additionalSlaveSecurityGroupIds": SM,
        "serviceAccessSecurityGroupId": S,
        "hadoopSchedulerType": enum("PARALLEL_FAIR_SCHEDULING", "PARALLEL_CAPACITY_SCHEDULING",
                                    "DEFAULT_SCHEDULER"),
        "enableDebugging": BOOL, "masterGroupConfiguration": S, "coreGroupConfiguration": S,
        "taskGroupConfiguration": S, "masterEbsConfiguration": EBS,
        "coreEbsConfiguration": EBS, "taskEbsConfiguration": EBS, "supportedProducts": SM,
        "emrLogUri": S,
        "hadoopVersion": S, "installHive": S, "installPig": S}),
    TypeSpec("HttpProxy", "config", "ignore", {
        "hostname": S, "port": INT, "username": S, "*password": S, "windowsDomain": S,
        "windowsWorkgroup": S, "s3NoProxy": BOOL},
        required=("hostname", "port")),
    # preconditions
    TypeSpec("DynamoDBDataExists", "precondition", "run", {**PRECONDITION_COMMON,
                                                            "tableName": S},
             required=("tableName",), aws_only_required=("role",)),
    TypeSpec("DynamoDBTableExists", "precondition", "run", {**PRECONDITION_COMMON,
                                                             "tableName": S},
             required=("tableName",), aws_only_required=("role",)),
    TypeSpec("S3KeyExists", "precondition", "run", {**PRECONDITION_COMMON, "s3Key": S},
             required=("s3Key",), aws_only_required=("role",)),
    TypeSpec("S3PrefixNotEmpty", "precondition", "run", {**PRECONDITION_COMMON, "s3Prefix": S},
             required=("s3Prefix",), aws_only_required=("role",)),
    TypeSpec("Exists", "precondition", "run", dict(PRECONDITION_COMMON)),
    TypeSpec("ShellCommandPrecondition", "precondition", "run", {
        **PRECONDITION_COMMON, "command": S, "scriptUri": S, "scriptArgument": SM,
        "stdout": S, "stderr": S},
        one_of=(("command", "scriptUri"),)),
    TypeSpec("SqlQueryPrecondition", "precondition", "run", {
        **PRECONDITION_COMMON, "database": ref("database"), "query": S},
        required=("database", "query"), extension=True,
        note="headrace extension: satisfied when the query returns a row whose first column "
             "is true"),
    # databases
    TypeSpec("JdbcDatabase", "database", "run", {
        **DB_COMMON, "connectionString": S, "jdbcDriverClass": S},
        required=("connectionString", "username", "*password"),
        aws_only_required=("jdbcDriverClass",)),
    TypeSpec("RdsDatabase", "database", "run", {
        **DB_COMMON, "rdsInstanceId": S, "connectionString": S},
        required=("rdsInstanceId", "username", "*password")),
    TypeSpec("RedshiftDatabase", "database", "run", {
        **DB_COMMON, "clusterId": S, "connectionString": S},
        required=("username", "*password"), one_of=(("clusterId", "connectionString"),)),
    # data formats
    # ``header`` on CSV and TSV: a headrace extension (a header line of column names)
    TypeSpec("CSV", "dataformat", "run", {**COLUMNS, "escapeChar": S, "header": BOOL}),
    TypeSpec("TSV", "dataformat", "run", {**COLUMNS, "columnSeparator": S,
                                          "recordSeparator": S, "escapeChar": S,
                                          "header": BOOL}),
    TypeSpec("Custom", "dataformat", "run", {**COLUMNS, "columnSeparator": S,
                                             "recordSeparator": S},
             required=("columnSeparator",)),
    TypeSpec("RegEx", "dataformat", "run", {**COLUMNS, "inputRegEx": S, "outputFormat": S}),
    TypeSpec("DynamoDBDataFormat", "dataformat", "run", dict(COLUMNS)),
    TypeSpec("DynamoDBExportDataFormat", "dataformat", "run", dict(COLUMNS)),
    TypeSpec("ParquetDataFormat", "dataformat", "run", {
        **COLUMNS, "compression": enum("zstd", "snappy", "none")}, extension=True,
        note="headrace extension: Parquet files (pyarrow, the headrace[parquet] extra); "
             "row groups compressed with zstd (the default), snappy or none"),
    # actions
    TypeSpec("SnsAlarm", "action", "run", {
        "topicArn": S, "subject": S, "message": S, "role": S, "node": ref(), "region": S},
        required=("topicArn", "subject", "message"), aws_only_required=("role",)),
    TypeSpec("Terminate", "action", "run", {"node": ref()}),
    # schedule and utilities
    TypeSpec("Schedule", "schedule", "run", {
        "period": S, "startDateTime": S, "startAt": S, "endDateTime": S, "occurrences": INT},
        required=("period",), one_of=(("startDateTime", "startAt"),),
        at_most_one=(("endDateTime", "occurrences"),)),
    TypeSpec("ShellScriptConfig", "config", "read", {"scriptUri": S, "scriptArgument": SM}),
    TypeSpec("EmrConfiguration", "config", "read", {
        "classification": S, "property": ref("Property", multi=True),
        "configuration": ref("EmrConfiguration", multi=True)},
        required=("classification",)),
    TypeSpec("Property", "config", "read", {"key": S, "value": S}, required=("key", "value")),
    # EBS volumes of an EmrCluster's nodes (Developer Guide, "Attach EBS volumes to cluster
    # nodes")
    TypeSpec("EbsConfiguration", "config", "read", {
        "ebsOptimized": BOOL, "ebsBlockDeviceConfig": ref("EbsBlockDeviceConfig", multi=True)}),
    TypeSpec("EbsBlockDeviceConfig", "config", "read", {
        "volumeSpecification": ref("VolumeSpecification"), "volumesPerInstance": INT},
        required=("volumeSpecification",)),
    TypeSpec("VolumeSpecification", "config", "read", {
        "sizeInGB": INT, "volumeType": S, "iops": INT}, required=("sizeInGB", "volumeType")),
]

TYPES: dict[str, TypeSpec] = {}
for _spec in _TYPES:
    _spec.all_fields.update(UNIVERSAL)
    _spec.all_fields.update(_spec.fields)
    TYPES[_spec.name] = _spec

#: Every field name any type knows: fields on untyped parents and Default are checked against it.
ALL_FIELD_NAMES: frozenset[str] = frozenset(
    name for spec in TYPES.values() for name in spec.all_fields)

#: Runtime fields readable in expressions as ``@name`` (reference section 2).
RUNTIME_FIELDS: frozenset[str] = frozenset({
    "@status", "@scheduledStartTime", "@scheduledEndTime", "@actualStartTime", "@actualEndTime",
    "@finishedTime", "@activeInstances", "@cascadeFailedOn", "@waitingOn", "@healthStatus",
    "@healthStatusFromInstanceId", "@healthStatusUpdatedTime", "@lastDeactivatedTime",
    "@latestCompletedRunTime", "@latestRunTime", "@nextRunTime", "@version", "@failureReason",
    "@resourceStatus", "@pipelineId", "@sphere", "@error", "@id", "@componentParent",
    "@instanceParent", "@firstActivationTime", "@attemptCount", "@name",
})

#: Attempt fields readable without ``@`` (``#{node.errorMessage}``).
ATTEMPT_FIELDS: frozenset[str] = frozenset({
    "errorId", "errorMessage", "errorStackTrace", "cancellationReason", "hostname",
    "reportProgressTime", "currentRetryCount", "lastRetryTime",
})


def is_user_field(name: str) -> bool:
    """User fields start with lower-case ``my`` followed by an upper-case letter or ``_``."""
    return len(name) > 2 and name.startswith("my") and (name[2].isupper() or name[2] == "_")


def is_secret_field(name: str) -> bool:
    return name.startswith("*")


def category_of(type_name: str | None) -> Category | None:
    spec = TYPES.get(type_name or "")
    return spec.category if spec else None


def ref_allows(spec: FieldSpec, target_type: str | None) -> bool:
    if not spec.targets:
        return True
    if target_type is None:
        return False
    return target_type in spec.targets or category_of(target_type) in spec.targets


#: Why PigActivity is refused, at ``validate`` and at run time.
PIG_REFUSAL = ("Apache Pig is not available to headrace (no package it can install ships it), "
               "so PigActivity cannot run here: rewrite the script as a HiveActivity (Spark "
               "SQL, which headrace runs) or as a PySpark step (EmrActivity with "
               "command-runner.jar,spark-submit), or keep this pipeline on AWS")


def unsupported_reason(type_name: str | None) -> str | None:
    """Why headrace will not run an object of this type, or None when it runs it (or the type
    is unknown, which validation reports). For the runtime's refusal message."""
    spec = TYPES.get(type_name or "")
    if spec is None or spec.runs != "read" or spec.category != "activity":
        return None
    if spec.name == "PigActivity":
        return PIG_REFUSAL
    return (f"{spec.name} needs Amazon EMR (a Hadoop cluster): headrace reads and validates it "
            "but does not run it; replace it with a ShellCommandActivity, SqlActivity or "
            "CopyActivity, or keep this pipeline on AWS")
