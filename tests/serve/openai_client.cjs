// Drives `loom serve` with the official openai npm client (openai@6): models.list, a completion, a chat
// completion, a streamed chat completion (its text must equal the non-streamed one at temperature 0), and
// error cases (400 with the parameter named, 401 with a wrong key). Prints one JSON line; exit 1 on failure.
//   CLIENTS_DIR=~/.cache/loom/serve-clients BASE_URL=http://127.0.0.1:8080/v1 MODEL=run API_KEY=k node openai_client.cjs
const path = require('path');
const OpenAI = require(path.join(process.env.CLIENTS_DIR, 'node_modules', 'openai'));

function check(cond, msg) {
  if (!cond) {
    console.error('FAIL: ' + msg);
    process.exit(1);
  }
}

async function main() {
  const model = process.env.MODEL;
  const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0, timeout: 60000 });

  const models = await client.models.list();
  check(models.data.some((m) => m.id === model), 'models.list lacks ' + model + ': ' + JSON.stringify(models.data));

  const c = await client.completions.create({ model, prompt: 'In the beginning', max_tokens: 8, temperature: 0 });
  check(c.object === 'text_completion', 'completion object: ' + c.object);
  check(typeof c.choices[0].text === 'string', 'completion text');
  check(c.usage.completion_tokens === 8 && c.usage.prompt_tokens === 16, 'completion usage: ' + JSON.stringify(c.usage));

  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }];
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0 });
  check(chat.object === 'chat.completion' && chat.choices[0].message.role === 'assistant', 'chat shape');
  check(['stop', 'length'].includes(chat.choices[0].finish_reason), 'chat finish_reason');

  const stream = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0, stream: true });
  let text = '', chunks = 0, finish = null;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  check(chunks >= 2, 'stream chunks: ' + chunks);
  check(text === chat.choices[0].message.content, 'stream text ' + JSON.stringify(text) + ' != ' +
        JSON.stringify(chat.choices[0].message.content));
  check(finish === chat.choices[0].finish_reason, 'stream finish_reason ' + finish);

  try {
    await client.completions.create({ model, prompt: 'a', temperature: 9 });
    check(false, 'temperature 9 was accepted');
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && e.status === 400, 'expected a 400, got ' + e);
    check(e.param === 'temperature' && /temperature/.test(e.message), 'error names the parameter: ' + e.message);
  }
  try {
    const bad = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: 'wrong', maxRetries: 0 });
    await bad.models.list();
    check(false, 'a wrong API key was accepted');
  } catch (e) {
    check(e instanceof OpenAI.AuthenticationError && e.status === 401, 'expected a 401, got ' + e);
  }
  console.log(JSON.stringify({ ok: true, completion: c.choices[0].text, chat: chat.choices[0].message.content, chunks }));
}

main().catch((e) => {
  console.error('FAIL: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
