"""An application that sends WhatsApp and Messenger messages with Vonage's `vonage-messages`
SDK and answers the inbound messages its webhook receives: what a user of Vonage writes, with
nothing in it about chatapp-accounts but the API host and the CA it is told to trust."""
