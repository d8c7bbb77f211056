"""The live path: ITS messages over MQTT in, the same controllers and core, SPATEM / SSEM out."""
