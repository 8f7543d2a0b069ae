"""headrace's control plane: definitions, schedules, plans, the actor runtime and the store."""
