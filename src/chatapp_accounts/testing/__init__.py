"""The testing kit (docs/testing-kit.md): the pytest plugin (`plugin`, entry point `pytest11`),
the server it runs (`server`), its factories and simulated customer (`kit`), the webhook
receiver (`receiver`, also `chatapp-accounts webhooks receive`) and the local certificates
(`certificates`, also `chatapp-accounts certificates`)."""
