"""Does the size of the tiny grounder's vision tower or LLM limit selection? (07d, seventh and tenth rounds)

LLaVA reads the vision tower's hidden states at `vision_feature_layer` (-2, the penultimate layer, as LLaVA-1.5 does),
so the tiny preset's 2-layer tower feeds the LLM one layer and its last layer never trains. The tiny LLM has 2 layers
too, which may be too shallow for two-hop expressions ("the black shape above the black square", "the second circle
from the left"). This tool runs `train_grounder` - the same recipe, SAM pre-training included - with the tiny preset's
tower or LLM resized (the preset keeps its name, so every tiny default of `train_grounder`
applies; the saved config.json records the architecture, so the result loads with `Grounder.from_pretrained` like any
run). The tower's and the LLM's depths go through `train_grounder`'s own options (`vision_layers=`, `llm_layers=`);
only the feature layer, which has no option, is set in the preset for this process.

  --layers N         CLIP encoder layers (tiny preset: 2)
  --feature-layer K  the hidden states LLaVA reads (-2: the penultimate layer; -1: the last, so every layer trains)
  --llm-layers N     Llama decoder layers (tiny preset: 2; `train_grounder(llm_layers=N)`, also `--llm-layers` of
                     `referpix2pix train grounder`)
  --semantic         add `semantic_edit` conversations (`train_grounder(semantic=True)`)
  --vision-steps N   pre-train the vision tower first (`train_grounder(vision_steps=N)`)
  --freeze-vision    keep the pre-trained tower fixed in stage 1
  --no-coref         the w/o co-refer mixture

Usage: python tools/probe_vision_tower.py WORLD OUT --layers 4 --feature-layer -2 --steps 2500 --semantic [--lr 1e-3]
       python tools/probe_vision_tower.py WORLD OUT --llm-layers 4 --steps 4000 --semantic --vision-steps 2000 --freeze-vision
"""
import argparse, dataclasses, json
from referpix2pix.core import get_preset, register_preset
from referpix2pix.stage1 import train_grounder

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('world'); ap.add_argument('out')
    ap.add_argument('--layers', type=int, default=2); ap.add_argument('--feature-layer', type=int, default=-2)
    ap.add_argument('--llm-layers', type=int, default=2)
    ap.add_argument('--steps', type=int, default=2500); ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--sam-steps', type=int, default=600); ap.add_argument('--eval-every', type=int, default=500)
    ap.add_argument('--semantic', action='store_true'); ap.add_argument('--no-coref', action='store_true')
    ap.add_argument('--vision-steps', type=int, default=0); ap.add_argument('--freeze-vision', action='store_true')
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--resume', default=None)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    if not a.layers >= 1 or not -a.layers <= a.feature_layer <= -1:
        ap.error(f"--feature-layer must lie in [-{a.layers}, -1] for a {a.layers}-layer tower")
    tiny = get_preset('tiny')   # the feature layer is the one setting `train_grounder` has no option for
    register_preset(dataclasses.replace(tiny, grounder={**tiny.grounder, 'vision_feature_layer': a.feature_layer}))
    r = train_grounder(a.world, a.out, steps=a.steps, sam_steps=a.sam_steps, lr=a.lr, eval_every=a.eval_every,
                       semantic=a.semantic, coref=not a.no_coref, vision_steps=a.vision_steps, freeze_vision=a.freeze_vision,
                       seed=a.seed, resume=a.resume, vision_layers=a.layers, llm_layers=a.llm_layers, threads=a.threads, progress=False)
    print(json.dumps(dict(vision_layers=a.layers, vision_feature_layer=a.feature_layer, llm_layers=a.llm_layers,
                          grounding=r['grounding'], train_seconds=r['train_seconds']), indent=1))
