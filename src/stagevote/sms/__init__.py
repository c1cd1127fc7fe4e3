"""SMS: Twilio's inbound webhook, its keyword grammar and TwiML replies."""
