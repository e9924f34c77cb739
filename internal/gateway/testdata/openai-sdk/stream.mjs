// Streams a chat completion through Warden with the official openai SDK
// and prints, as one JSON line, the text the SDK yielded and the error it
// raised (TestOpenAINodeSDKSeesStreamErrors). Usage:
//   node stream.mjs <base URL> <query string for the test upstream>
import OpenAI from 'openai';

const [baseURL, query] = process.argv.slice(2);
const client = new OpenAI({
  baseURL,
  apiKey: 'unused',
  maxRetries: 0,
  defaultQuery: Object.fromEntries(new URLSearchParams(query)),
});
let text = '';
try {
  const stream = await client.chat.completions.create({
    model: 'm',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
  });
  for await (const chunk of stream) {
    for (const choice of chunk.choices ?? []) {
      text += choice.delta?.content ?? '';
      for (const call of choice.delta?.tool_calls ?? []) text += call.function?.arguments ?? '';
    }
  }
  console.log(JSON.stringify({ text, error: null }));
} catch (e) {
  console.log(JSON.stringify({
    text,
    error: {
      class: e.constructor.name, isAPIError: e instanceof OpenAI.APIError, message: e.message,
      type: e.type ?? null, code: e.code ?? null, requestID: e.requestID ?? null,
    },
  }));
}
