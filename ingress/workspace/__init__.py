"""The browser workspace: finance's approval inbox, the exception workspace and business health, as
server-rendered Jinja2 pages whose forms go through the same validated decisions and queue actions as the
API and the CLI."""
