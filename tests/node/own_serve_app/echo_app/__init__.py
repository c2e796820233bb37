"""The Serve app values/examples/own-serve-app.yaml deploys from echo-app-<version>.zip."""
