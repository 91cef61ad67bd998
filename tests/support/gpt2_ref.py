# A GPT-2 forward in plain torch with Hugging Face's parameter names and Conv1D (in, out) weight layout
# (Debian has no `transformers`), plus a safetensors reader/writer in struct + json, so loom's GPT tests
# check HF folders against an implementation independent of loom's reader and writer.
# Used by tests/test_gpt.cpp and tests/test_gpt_hf.cpp (exec'd inside the torch oracle).
import json, math, os, struct
import torch, torch.nn.functional as F

CONV1D = ('attn.c_attn.weight', 'attn.c_proj.weight', 'mlp.c_fc.weight', 'mlp.c_proj.weight')

def is_conv1d(name):
    return name.endswith(CONV1D)

def gpt2_forward(sd, cfg, idx):
    """sd: HF names without 'transformer.', Conv1D weights (in, out). idx (B, T) -> logits (B, T, V)."""
    E, H, eps = cfg['n_embd'], cfg['n_head'], cfg.get('layer_norm_epsilon', 1e-5)
    approx = 'none' if cfg.get('activation_function', 'gelu_new') == 'gelu' else 'tanh'
    B, T = idx.shape
    x = sd['wte.weight'][idx] + sd['wpe.weight'][torch.arange(T)]
    conv1d = lambda x, p: x @ sd[p + '.weight'] + sd[p + '.bias']  # HF's Conv1D: x W + b with W (in, out)
    for i in range(cfg['n_layer']):
        p = 'h.%d.' % i
        a = F.layer_norm(x, (E,), sd[p + 'ln_1.weight'], sd[p + 'ln_1.bias'], eps)
        q, k, v = conv1d(a, p + 'attn.c_attn').split(E, 2)
        q, k, v = (z.view(B, T, H, E // H).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(E // H)
        att = att.masked_fill(torch.ones(T, T).tril() == 0, float('-inf')).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, E)
        x = x + conv1d(y, p + 'attn.c_proj')
        m = F.layer_norm(x, (E,), sd[p + 'ln_2.weight'], sd[p + 'ln_2.bias'], eps)
        x = x + conv1d(F.gelu(conv1d(m, p + 'mlp.c_fc'), approximate=approx), p + 'mlp.c_proj')
    x = F.layer_norm(x, (E,), sd['ln_f.weight'], sd['ln_f.bias'], eps)
    head = sd['lm_head.weight'] if 'lm_head.weight' in sd and not cfg.get('tie_word_embeddings', True) else sd['wte.weight']
    return x @ head.t()

def random_gpt2(cfg, seed):
    """A randomly initialised GPT-2 state dict in HF's layout (no prefix)."""
    g = torch.Generator().manual_seed(seed)
    E, V, P, I = cfg['n_embd'], cfg['vocab_size'], cfg['n_positions'], cfg.get('n_inner') or 4 * cfg['n_embd']
    r = lambda *s: torch.randn(*s, generator=g) * 0.2
    sd = {'wte.weight': r(V, E), 'wpe.weight': r(P, E)}
    for i in range(cfg['n_layer']):
        p = 'h.%d.' % i
        sd.update({p + 'ln_1.weight': 1 + r(E), p + 'ln_1.bias': r(E),
                   p + 'attn.c_attn.weight': r(E, 3 * E), p + 'attn.c_attn.bias': r(3 * E),
                   p + 'attn.c_proj.weight': r(E, E), p + 'attn.c_proj.bias': r(E),
                   p + 'ln_2.weight': 1 + r(E), p + 'ln_2.bias': r(E),
                   p + 'mlp.c_fc.weight': r(E, I), p + 'mlp.c_fc.bias': r(I),
                   p + 'mlp.c_proj.weight': r(I, E), p + 'mlp.c_proj.bias': r(E)})
    sd.update({'ln_f.weight': 1 + r(E), 'ln_f.bias': r(E)})
    if not cfg.get('tie_word_embeddings', True):
        sd['lm_head.weight'] = r(V, E)
    return sd

ST_DT = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64'}
ST_TORCH = {v: k for k, v in ST_DT.items()}

def save_st(path, sd, meta=None):
    head, blobs, off = {}, [], 0
    for k, v in sd.items():
        v = v.detach().contiguous()
        b = v.view(torch.uint8).numpy().tobytes() if v.dtype == torch.bfloat16 else v.numpy().tobytes()
        head[k] = {'dtype': ST_DT[v.dtype], 'shape': list(v.shape), 'data_offsets': [off, off + len(b)]}
        off += len(b); blobs.append(b)
    if meta: head['__metadata__'] = meta
    h = json.dumps(head).encode(); h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)

def load_st(path):
    data = open(path, 'rb').read()
    n, = struct.unpack('<Q', data[:8])
    head = json.loads(data[8:8 + n]); base = 8 + n
    sd = {}
    for k, v in head.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']
        buf = bytearray(data[base + s:base + e])
        dt = ST_TORCH[v['dtype']]
        t = torch.frombuffer(buf, dtype=torch.uint8).view(dt) if dt == torch.bfloat16 else torch.frombuffer(buf, dtype=dt)
        sd[k] = t.reshape(v['shape'])
    return sd, head.get('__metadata__', {})

def write_hf_folder(path, cfg, sd, prefix='', extra=None, dtype=torch.float32):
    """An HF GPT-2 folder: config.json + model.safetensors (optionally 'transformer.'-prefixed, with HF's
    attn.bias mask buffers as older files have)."""
    os.makedirs(path, exist_ok=True)
    conf = {'model_type': 'gpt2', 'architectures': ['GPT2LMHeadModel'], 'n_ctx': cfg['n_positions'],
            'embd_pdrop': 0.1, 'attn_pdrop': 0.1, 'resid_pdrop': 0.1, 'bos_token_id': 50256, 'eos_token_id': 50256,
            'n_inner': None, 'layer_norm_epsilon': 1e-5, 'activation_function': 'gelu_new'}
    conf.update(cfg)
    json.dump(conf, open(os.path.join(path, 'config.json'), 'w'), indent=2)
    out = {}
    for k, v in sd.items():
        name = k if k == 'lm_head.weight' else prefix + k
        out[name] = v.to(dtype)
    for extra_name in (extra or []):
        out[extra_name] = torch.tril(torch.ones(1, 1, cfg['n_positions'], cfg['n_positions'])).to(dtype)
    save_st(os.path.join(path, 'model.safetensors'), out, {'format': 'pt'})

def read_hf_folder(path):
    cfg = json.load(open(os.path.join(path, 'config.json')))
    sd, meta = load_st(os.path.join(path, 'model.safetensors'))
    sd = {(k[12:] if k.startswith('transformer.') else k): v.float() for k, v in sd.items()}
    return cfg, sd, meta
