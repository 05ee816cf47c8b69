from openice.cli import app

app()
