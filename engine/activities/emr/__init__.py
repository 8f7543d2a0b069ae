"""The EMR family, run without Amazon EMR: EmrActivity steps that are DynamoDB copies run with
headrace's own connectors, the others and HiveActivity/HiveCopyActivity on Apache Spark.
Importing this package registers the activities.

Inside: ``steps`` (a step string, split and recognised), ``ddb_backup`` (the EMR DynamoDB tools'
backup directory as a copy's sink and source), ``ddb_tools`` (the native DynamoDB steps),
``emr_activity`` (the EmrActivity runner); Spark: ``spark_config`` (where), ``spark_submit``
(launching one application), ``s3_staging``, ``spark_steps``; Hive on Spark SQL:
``hive_script``, ``hive_tables``, ``hive_driver`` (the application), ``hive_activity``;
``hadoop_pig`` (HadoopActivity on Hadoop's local job runner, PigActivity's refusal).
"""

from engine.activities.emr import emr_activity as emr_activity
from engine.activities.emr import hadoop_pig as hadoop_pig
from engine.activities.emr import hive_activity as hive_activity
