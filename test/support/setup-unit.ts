// Unit tests never touch the network: no service endpoints, the cache off, logs silent.
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'unit';
process.env.AWS_SECRET_ACCESS_KEY ??= 'unit';
process.env.REDIS_URL = '';
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
