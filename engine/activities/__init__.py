"""Activities headrace runs. Importing this package registers them in ``base.ACTIVITIES``."""

from engine.activities import copy as copy
from engine.activities import emr as emr
from engine.activities import shell as shell
from engine.activities import sql as sql
from engine.activities.base import ACTIVITIES as ACTIVITIES
from engine.activities.base import PRECONDITIONS as PRECONDITIONS
