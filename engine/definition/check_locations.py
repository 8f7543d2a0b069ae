"""Validation of the locations a run reads and writes: the URL scheme of each path field, after
parameters are substituted.

headrace reads and writes ``s3://`` URIs, ``file://`` URIs and plain local paths; any other
scheme (``ftp://``, ``hdfs://``, ``s3n://``) fails the attempt at run time, after its retries.
So a location whose scheme is known before the run (written as is, or coming from a parameter's
value) is an error here, in ``validate`` as in ``run``. The value is evaluated with the
parameters it has; what only a running instance knows (``#{@scheduledStartTime}``) stays as
written, which never hides a scheme: a scheme is the start of the text. A location that
starts with a runtime field, or whose parameters have no value yet, is checked when it runs.

``pipelineLogUri`` is a warning, not an error: a log root headrace cannot write falls back to
the default folder beside the store, and the run goes on.
"""

from __future__ import annotations

import re

from engine.definition.findings import Findings, shown
from engine.definition.graph import field_owner
from engine.definition.reader import Ref
from engine.definition.scope import text_before_run

#: Fields, by type, that hold a location a run reads or writes.
LOCATION_FIELDS: dict[str, tuple[str, ...]] = {
    "S3DataNode": ("filePath", "directoryPath"),
    "S3KeyExists": ("s3Key",),
    "S3PrefixNotEmpty": ("s3Prefix",),
    "ShellCommandActivity": ("scriptUri", "stdout", "stderr"),
    "ShellCommandPrecondition": ("scriptUri", "stdout", "stderr"),
    "SqlActivity": ("scriptUri",),
}
LOG_FIELD = "pipelineLogUri"
SCHEMES = ("s3", "file")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def check_locations(object_id: str, ctx: Findings) -> None:
    """The schemes of ``object_id``'s location fields (effective, so inherited ones too)."""
    definition = ctx.definition
    type_name = definition.type_of(object_id)
    if type_name is None:
        return
    fields = LOCATION_FIELDS.get(type_name, ())
    effective = definition.effective(object_id)
    for name in (*fields, LOG_FIELD):
        for value in effective.get(name, ()):
            if isinstance(value, Ref):
                continue
            found = _scheme_of(object_id, name, value, ctx)
            if found is None or found[0].lower() in SCHEMES:
                continue
            scheme, text, secret = found
            quoted = "****" if secret else shown(name, text)
            after = f" (after substitution of {value!r})" if text != value and not secret \
                else ""
            owner = field_owner(definition, object_id, name)
            if name == LOG_FIELD:
                ctx.warn(f"{quoted}{after}: headrace keeps logs in a local folder, a file:// "
                         f"URI or s3:// (kept locally), not {scheme}://; this pipeline's logs "
                         "go to the default folder beside the store", owner, name)
            else:
                ctx.error(f"{quoted}{after} has the scheme {scheme}://, which headrace cannot "
                          "read or write: use s3://, file:// or a local path", owner, name)


def _scheme_of(object_id: str, name: str, value: str,
               ctx: Findings) -> tuple[str, str, bool] | None:
    """(scheme, the text it was read from, whether a secret took part), or None when the
    text has no scheme or its start is not known before the run."""
    if not value.startswith("#{"):  # the scheme, if any, is written out
        match = _SCHEME.match(value)
        return (match.group(1), value, False) if match else None
    known = text_before_run(ctx.definition, object_id, value)
    if known is None:
        return None
    text, secret = known
    match = _SCHEME.match(text)
    return (match.group(1), text, secret) if match else None
