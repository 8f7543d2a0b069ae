"""Where Spark runs: the master and the configuration a ``spark-submit`` gets.

``--spark-master`` and ``--spark-conf`` (on ``run``, ``engine``, ``serve`` and ``worker``) set
the two variables below for the process, so every activity of it reads them the same way:

* ``HEADRACE_SPARK_MASTER``: ``URL`` for every EmrCluster, and/or ``CLUSTER_ID=URL`` for one,
  several separated by spaces (``spark://host:7077``, ``yarn``, ``k8s://https://host:6443``,
  ``local[2]``). Unset: local mode, ``local[N]`` with N the machine's CPUs (at most 8).
* ``HEADRACE_SPARK_CONF``: ``KEY=VALUE`` lines, passed as ``--conf`` after headrace's own
  defaults, so they win.

Local mode's defaults keep a run bounded and private: the driver (which is the whole
application in local mode) gets ``spark.driver.memory=1g``, binds to 127.0.0.1, and has no web
UI (it would listen on every interface, unauthenticated).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

MASTER_VARIABLE = "HEADRACE_SPARK_MASTER"
CONF_VARIABLE = "HEADRACE_SPARK_CONF"

#: Local mode's defaults (see the module docstring); a --spark-conf of the same key wins.
LOCAL_DEFAULTS = {
    "spark.driver.memory": "1g",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}

_CLUSTER_ENTRY = re.compile(r"^([A-Za-z0-9_.:-]+)=(.+)$")


def local_master() -> str:
    return f"local[{max(1, min(8, os.cpu_count() or 1))}]"


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith(("local", "yarn"))


def parse_masters(text: str) -> tuple[str | None, dict[str, str]]:
    """(the master for every cluster or None, {cluster id: master}) of HEADRACE_SPARK_MASTER."""
    default: str | None = None
    per_cluster: dict[str, str] = {}
    for entry in text.split():
        m = _CLUSTER_ENTRY.match(entry)
        if m and not _is_url(m[1]):
            per_cluster[m[1]] = m[2]
        else:
            default = entry
    return default, per_cluster


def parse_conf(text: str) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of HEADRACE_SPARK_CONF (``ValueError`` naming a bad line)."""
    conf: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{CONF_VARIABLE}: {line!r} is not KEY=VALUE")
        conf[key.strip()] = value
    return conf


@dataclass(frozen=True)
class SparkTarget:
    """The master and ``--conf`` settings for one application."""

    master: str
    conf: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.master.startswith("local")


def spark_target(cluster_id: str | None, environ: dict[str, str] | None = None) -> SparkTarget:
    """Where the application of an activity running on ``cluster_id`` goes."""
    env = os.environ if environ is None else environ
    default, per_cluster = parse_masters(env.get(MASTER_VARIABLE, ""))
    master = per_cluster.get(cluster_id or "") or default or local_master()
    conf = dict(LOCAL_DEFAULTS) if master.startswith("local") else {}
    conf.update(parse_conf(env.get(CONF_VARIABLE, "")))
    return SparkTarget(master, conf)


def export_settings(masters: tuple[str, ...], confs: tuple[str, ...]) -> None:
    """What ``--spark-master`` / ``--spark-conf`` say, for this process and its children."""
    if masters:
        os.environ[MASTER_VARIABLE] = " ".join(masters)
    if confs:
        existing = os.environ.get(CONF_VARIABLE, "")
        os.environ[CONF_VARIABLE] = "\n".join([line for line in (existing, *confs) if line])
