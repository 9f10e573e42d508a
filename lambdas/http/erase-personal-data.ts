// Placeholder while the handler is being written; replaced in the CRUD work.
export const handler = async (): Promise<{ statusCode: number }> => ({ statusCode: 501 });
