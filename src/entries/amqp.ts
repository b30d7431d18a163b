/** `tollgate/amqp`: the AMQP transport on amqplib (a peer dependency). */
export * from '../transports/amqp/index.js';
