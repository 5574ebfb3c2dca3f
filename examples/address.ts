// Where the demo and the examples listen: HOST (default 127.0.0.1, this machine only) and PORT
// (default 8888). They print the address they bind, so what they say is where they are.

/** The interface to listen on: HOST, default 127.0.0.1. Set HOST=0.0.0.0 to serve other machines. */
const host = process.env.HOST ?? '127.0.0.1';

/** The port to listen on: PORT, default 8888. */
const port = Number(process.env.PORT ?? 8888);

/** The URL of the app at `host` and `port`, for people to open. */
const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;

export { host, port, origin };
