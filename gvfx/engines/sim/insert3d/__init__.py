"""3D inserts from one reference image: the object's matte, a proxy mesh (lathe, inflate, card or the
user's own mesh), a CPU z-buffer rasteriser and plate-matched shading with a cast shadow."""
