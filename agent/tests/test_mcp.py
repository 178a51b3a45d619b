"""`claude-telemetry mcp`: the SDK's MCP client over stdio against the agent, which passes the
live server's tools through with its own token."""

import json
import sys

import anyio
import httpx
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from agent.tests.test_end_to_end import issue_token

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def over_stdio(agent_env: dict, work):
    """Start `python -m claude_telemetry mcp` and run `work(client)` against it."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "claude_telemetry", "mcp"],
        env=agent_env,
        cwd=agent_env["HOME"],
    )

    async def go():
        async with Client(params) as client:
            return await work(client)

    return anyio.run(go)


def setup(cli, server, token: str) -> None:
    done = cli(
        "setup", "--server", server.url, "--token", token, "--name", "laptop", "--non-interactive"
    )
    assert done.code == 0, done.output


def test_the_agent_serves_the_servers_tools_and_their_answers_over_stdio(server, cli, agent_env):
    token = issue_token()
    setup(cli, server, token)
    assert cli("sync").code == 0

    async def work(client):
        tools = (await client.list_tools()).tools
        result = await client.call_tool("get_usage", {"group_by": "source"})
        return {t.name for t in tools}, result

    names, result = over_stdio(agent_env, work)
    assert {"get_usage", "get_running_blocks", "get_limits", "list_budgets"} <= names
    assert not result.is_error
    body = json.loads(result.content[0].text)
    rest = httpx.get(
        f"{server.url}/api/v1/usage/",
        params={"group_by": "source"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ).json()
    assert body["results"] == rest["results"]
    assert body["totals"] == rest["totals"]
    assert body["period"]["timezone"] == "UTC"


def test_bad_arguments_come_back_as_the_servers_reasons(server, cli, agent_env):
    setup(cli, server, issue_token())

    async def work(client):
        return await client.call_tool("get_usage", {"since": "2026-11-10", "until": "2026-11-01"})

    result = over_stdio(agent_env, work)
    assert result.is_error
    assert "until must not be before since" in result.content[0].text


def test_a_token_without_read_gets_a_readable_reason_not_a_crash(server, cli, agent_env):
    setup(cli, server, issue_token("ingest"))

    async def work(client):
        return await client.call_tool("get_usage", {})

    result = over_stdio(agent_env, work)
    assert result.is_error
    assert "lacks the 'read' scope" in result.content[0].text
