"""The gateway's update agent: A/B slots, verified offline installs, trial, commit or return."""
