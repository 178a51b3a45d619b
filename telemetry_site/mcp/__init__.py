"""The remote MCP server at /mcp: the read API's answers as tools for Claude Code and Desktop."""
