"""The mock provider Pod's program (``python -c`` in the product image).

The product's own ``MockProvider`` (the one ``provider-router demo`` uses), on 0.0.0.0:PORT,
until SIGTERM; with API_KEY set, it answers only calls that carry that key. Running it from
the product image keeps the e2e test free of any other image.
"""

import asyncio
import os
import signal

from provider_router.demo import MockProvider


async def main() -> None:
    mock = MockProvider(name=os.environ.get("NAME", "mock"), host="0.0.0.0",
                        port=int(os.environ.get("PORT", "9000")),
                        api_key=os.environ.get("API_KEY") or None)
    await mock.start()
    print(f"mock provider listening on {mock.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await mock.stop()


asyncio.run(main())
