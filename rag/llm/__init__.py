"""Chat models: the ``ChatModel`` protocol, the OpenAI-compatible client, its deadlines and cache, the local model."""
