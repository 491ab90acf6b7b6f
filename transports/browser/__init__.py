"""The talk page: a browser speaking to the agent over ``/ws/browser``."""
