"""Puts this folder on ``sys.path`` (pytest does so for a folder with a conftest), so the test
scripts in the subfolders import the shared ``fork_server``."""
