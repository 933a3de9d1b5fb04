"""DingTalk as the workers see it: OpenAPI client and token, rate budget, message bodies in and out, cards, media."""
