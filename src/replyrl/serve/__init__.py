"""Serving replies to people: suggest, the local web app, feedback."""
