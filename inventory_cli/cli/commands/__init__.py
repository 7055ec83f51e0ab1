"""The commands, one module per concern; each adds its commands to the app with `register(app)`."""
