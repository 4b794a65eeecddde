"""The database mailbox between `tradebot shutdown|wake` and the running agent: the CLI
writes its request under `CLI_REQUEST_KEY` (trader/control_cli.py); the agent's loop runs it
as its own command and writes the answer under `answer_key(id)` (trader/control.py).
Kept apart so the CLI reads and writes it without loading the agent."""

CLI_REQUEST_KEY = "cli:request"


def answer_key(request_id: str) -> str:
    return f"cli:answer:{request_id}"
