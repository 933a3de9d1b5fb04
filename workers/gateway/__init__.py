"""The message gateway: DingTalk message types in (inbound), reply bodies out (outbound), media, cards."""
