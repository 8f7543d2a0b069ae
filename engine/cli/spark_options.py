"""``--spark-master`` and ``--spark-conf``: where the Spark applications of EMR steps run.

On ``run``, ``engine``, ``serve`` and ``worker``. They set ``HEADRACE_SPARK_MASTER`` /
``HEADRACE_SPARK_CONF`` for the process (see :mod:`engine.activities.emr.spark_config`), so the
flag and the variable mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def _masters(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> None:
    from engine.activities.emr.spark_config import export_settings

    for value in values:
        if not value.strip() or " " in value.strip():
            raise click.BadParameter(f"{value!r}: expected URL or CLUSTER_ID=URL", ctx=ctx,
                                     param=param)
    export_settings(tuple(v.strip() for v in values), ())


def _confs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> None:
    from engine.activities.emr.spark_config import export_settings

    for value in values:
        key, sep, _ = value.partition("=")
        if not sep or not key.strip() or "\n" in value:
            raise click.BadParameter(f"{value!r}: expected KEY=VALUE", ctx=ctx, param=param)
    export_settings((), values)


def spark_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--spark-conf", multiple=True, metavar="KEY=VALUE", expose_value=False,
        callback=_confs,
        help="A Spark setting for every application (spark-submit --conf). Repeatable; "
             "$HEADRACE_SPARK_CONF holds them one a line.")(func)
    return click.option(
        "--spark-master", multiple=True, metavar="[CLUSTER_ID=]URL", expose_value=False,
        callback=_masters,
        help="Where EMR steps' Spark applications run: spark://..., yarn, k8s://..., "
             "local[N]; for all, or for the EmrCluster CLUSTER_ID. Repeatable. Default "
             "$HEADRACE_SPARK_MASTER, else local mode.")(func)
