"""The EMR family, run without Amazon EMR: EmrActivity steps that are DynamoDB copies run with
headrace's own connectors. Importing this package registers the activities.

Inside: ``steps`` (a step string, split and recognised), ``ddb_backup`` (the EMR DynamoDB tools'
backup directory as a copy's sink and source), ``ddb_tools`` (the native DynamoDB steps),
``emr_activity`` (the EmrActivity runner).
"""

from engine.activities.emr import emr_activity as emr_activity
