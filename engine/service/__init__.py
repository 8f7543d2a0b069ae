"""The one place that decides what the pipeline verbs mean.

``create``, ``put-definition``, ``activate``, ``deactivate``, ``delete``, ``set-status``,
``describe-objects``, ``query-objects``, ``evaluate-expression`` and tags, against a store. The
CLI (``engine/cli/pipeline_cmds.py``), the API server (``engine/server/``) and the console
call these and only format what comes back; none of them talks to the store for a verb on its
own.
"""

from engine.service.errors import InvalidRequest, ObjectNotFound, PipelineDeleted, PipelineNotFound
from engine.service.objects import Objects, ObjectView
from engine.service.pipelines import (
    Activation,
    DefinitionCheck,
    PipelineService,
    PipelineSummary,
    parameter_value_args,
)
from engine.service.query import Selector, parse_selectors

__all__ = [
    "Activation", "DefinitionCheck", "InvalidRequest", "ObjectNotFound", "ObjectView",
    "Objects", "PipelineDeleted", "PipelineNotFound", "PipelineService", "PipelineSummary",
    "Selector", "parameter_value_args", "parse_selectors",
]
