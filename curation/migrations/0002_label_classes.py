from django.db import migrations

# index, code, name, aliases (folder names of the public Kaggle "Skin Diseases
# Image Dataset"; the counts in those names are not the real counts)
LABEL_CLASSES = [
    (0, "normal_skin", "Normal skin", ["0. Normal skin", "Normal", "Normal skin", "Healthy skin", "Healthy"]),
    (1, "eczema", "Eczema", ["1. Eczema 1677", "Eczema"]),
    (2, "melanoma", "Melanoma", ["2. Melanoma 15.75k", "Melanoma", "MEL"]),
    (3, "atopic_dermatitis", "Atopic dermatitis", ["3. Atopic Dermatitis - 1.25k", "Atopic Dermatitis"]),
    (4, "bcc", "Basal cell carcinoma (BCC)", ["4. Basal Cell Carcinoma (BCC) 3323", "Basal Cell Carcinoma", "BCC"]),
    (
        5,
        "melanocytic_nevi",
        "Melanocytic nevi (NV)",
        ["5. Melanocytic Nevi (NV) - 7970", "Melanocytic Nevi", "NV", "Nevus"],
    ),
    (
        6,
        "bkl",
        "Benign keratosis-like lesions (BKL)",
        ["6. Benign Keratosis-like Lesions (BKL) 2624", "Benign Keratosis-like Lesions", "BKL"],
    ),
    (
        7,
        "psoriasis_lichen_planus",
        "Psoriasis, lichen planus and related diseases",
        ["7. Psoriasis pictures Lichen Planus and related diseases - 2k", "Psoriasis", "Lichen Planus"],
    ),
    (
        8,
        "seborrheic_keratoses",
        "Seborrheic keratoses and other benign tumors",
        ["8. Seborrheic Keratoses and other Benign Tumors - 1.8k", "Seborrheic Keratoses"],
    ),
    (
        9,
        "fungal_infections",
        "Tinea, ringworm, candidiasis and other fungal infections",
        [
            "9. Tinea Ringworm Candidiasis and other Fungal Infections - 1.7k",
            "Tinea Ringworm Candidiasis",
            "Fungal Infections",
        ],
    ),
    (
        10,
        "viral_infections",
        "Warts, molluscum and other viral infections",
        ["10. Warts Molluscum and other Viral Infections - 2103", "Warts Molluscum", "Viral Infections"],
    ),
]


def create_label_classes(apps, schema_editor):
    label_class = apps.get_model("curation", "LabelClass")
    for index, code, name, aliases in LABEL_CLASSES:
        label_class.objects.update_or_create(code=code, defaults={"index": index, "name": name, "aliases": aliases})


def remove_label_classes(apps, schema_editor):
    apps.get_model("curation", "LabelClass").objects.filter(code__in=[row[1] for row in LABEL_CLASSES]).delete()


class Migration(migrations.Migration):
    dependencies = [("curation", "0001_initial")]

    operations = [migrations.RunPython(create_label_classes, remove_label_classes)]
