"""D4RL-style benchmark suites rebuilt locally: behaviour policies and dataset builds."""
