export const webhookCommand = async () => 2;
