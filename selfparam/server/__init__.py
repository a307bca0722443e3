"""`selfparam serve`: a self-updating model behind an OpenAI-compatible API, with a web page.

The `Engine` answers with the store's current version and writes new versions; `create_app` puts the
HTTP API and the page over it; one background `Worker` runs the knowledge jobs.
"""

from .app import create_app
from .engine import BusyError, Engine, Serving
from .settings import ServerSettings

__all__ = ["BusyError", "Engine", "Serving", "ServerSettings", "create_app"]
