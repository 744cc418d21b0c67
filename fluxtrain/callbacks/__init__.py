"""Callbacks shipped with fluxtrain."""
