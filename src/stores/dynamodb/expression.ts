import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/**
 * Collects expression attribute names and values. Every attribute name goes through a placeholder, so no
 * reserved word (status, key, value, ttl...) can break an expression, and only what is used is sent
 * (DynamoDB rejects unused or empty maps).
 */
export class Expr {
  private readonly names: Record<string, string> = {};
  private readonly values: Record<string, AttributeValue> = {};
  private counter = 0;

  /** Our attribute names are plain letters, so they make valid placeholders as they are. */
  name(attribute: string): string {
    const placeholder = `#${attribute}`;
    this.names[placeholder] = attribute;
    return placeholder;
  }

  value(value: AttributeValue): string {
    const placeholder = `:v${this.counter++}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  params(): {
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, AttributeValue>;
  } {
    return {
      ...(Object.keys(this.names).length > 0 ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length > 0 ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}
