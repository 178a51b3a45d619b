"""Small helpers shared by the agent's tests (imported as a top-level module by pytest)."""

from claude_telemetry.config import Config


def make_config(**overrides) -> Config:
    values = {
        "server_url": "https://telemetry.example.com",
        "machine_uuid": "6f1c2a9e-7a3b-4c55-9d7e-3b1f2a7c8d90",
        "machine_name": "laptop",
    }
    return Config(**{**values, **overrides})
