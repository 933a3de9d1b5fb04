"""What the workers keep between messages: the Redis keyspaces (claims, ordering, sessions, reply state,
buttons, cards) and the media store."""
