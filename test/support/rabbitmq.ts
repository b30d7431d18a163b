import { connect } from 'amqplib';

export const AMQP_URL = process.env.TOLLGATE_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Fails fast with a clear message when the broker every machine should run is not there. */
export async function ensureRabbitMq(): Promise<void> {
  try {
    const connection = await connect(AMQP_URL);
    await connection.close();
  } catch (error) {
    throw new Error(
      `RabbitMQ is not reachable at ${AMQP_URL} (start it with "rabbitmq-server -detached"): ${String(error)}`,
    );
  }
}
