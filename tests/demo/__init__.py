"""Tests of the demo application, the compose file and the several-servers topology."""
