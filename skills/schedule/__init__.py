"""The schedule skill: reminders and events from Chinese or English natural language."""
