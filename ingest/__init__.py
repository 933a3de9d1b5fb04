"""DingTalk Stream-mode listener: frames in, durable envelopes out, then ACK. No Django, no skills."""
