"""Robyn 0.88's MCP server (`robyn.mcp`, `MCPApp`, `app.mcp`) is not part of this project:
importing this module raises FeatureNotProvidedError (an ImportError) saying so."""

from .exceptions import FeatureNotProvidedError

MCP_WHY = ("Robyn's MCP (Model Context Protocol) server is not part of this project; "
           "serve MCP with a dedicated MCP server library next to the app")

raise FeatureNotProvidedError("robyn.mcp", MCP_WHY)
